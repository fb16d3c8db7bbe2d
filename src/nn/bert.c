/* grove: BERT (include/grove/bert.h). */
#include "grove/bert.h"
