/* grove: trees (JAX pytrees). Being written. */
#ifndef GROVE_TREE_H
#define GROVE_TREE_H
#endif
