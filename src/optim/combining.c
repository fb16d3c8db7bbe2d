/* (being written) */
#include "optim_internal.h"
