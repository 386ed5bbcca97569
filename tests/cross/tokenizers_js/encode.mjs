// Encodes texts with transformers.js, built offline from a tokenizer.json held in memory (nothing is fetched):
//     node encode.mjs REQUEST.json > RESULT.json
// REQUEST: {"tokenizer": <tokenizer.json object>, "config": <tokenizer_config.json object>, "texts": [...]}.
// RESULT: [{"ids": [...], "tokens": [...]}, ...], one per text, special tokens added, no truncation.
import { readFileSync } from 'node:fs';
import { PreTrainedTokenizer, env } from '@huggingface/transformers';

env.allowRemoteModels = false;
env.allowLocalModels = false;
const request = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const tokenizer = new PreTrainedTokenizer(request.tokenizer, request.config);
const out = request.texts.map((text) => {
  // No model_max_length in the config, so nothing is truncated.
  const ids = tokenizer(text, { return_tensor: false }).input_ids;
  const tokens = tokenizer.tokenize(text, { add_special_tokens: true });
  return { ids, tokens };
});
process.stdout.write(JSON.stringify(out));
