// attnlens::viz and attnlens::image, everything at once (installed as <attnlens/viz.hpp>): images and their
// preprocessing, image data sets, colour maps, overlays, head grids, SVG plots, self-contained HTML pages,
// highlighted text and attribution trees. Needs OpenCV.
#pragma once

#include "io/datasets.hpp"
#include "io/image.hpp"
#include "viz/colormap.hpp"
#include "viz/html.hpp"
#include "viz/overlay.hpp"
#include "viz/svg.hpp"
#include "viz/text_highlight.hpp"
#include "viz/tree_dot.hpp"
