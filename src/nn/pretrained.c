/* grove: loading Hugging Face checkpoints (include/grove/bert.h). */
#include "grove/bert.h"
