/* (being written) */
#include "graph/graph_internal.h"
