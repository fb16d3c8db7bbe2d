/* (being written) */
#include "grove/nn.h"
