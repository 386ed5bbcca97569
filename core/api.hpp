// What every public attnlens header shares: the visibility of the API. attnlens compiles with hidden symbols by
// default (-fvisibility=hidden), so that a shared build (-DBUILD_SHARED_LIBS=ON) exports exactly the declarations
// of its public headers: each one wraps them in ATTNLENS_API_BEGIN ... ATTNLENS_API_END. Helpers defined only in
// the .cpp files stay internal to their library.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define ATTNLENS_API_BEGIN _Pragma("GCC visibility push(default)")
#define ATTNLENS_API_END _Pragma("GCC visibility pop")
#else
#define ATTNLENS_API_BEGIN
#define ATTNLENS_API_END
#endif
