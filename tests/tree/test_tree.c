#include "testutil.h"
Test(placeholder, builds) { cr_assert(1); }
