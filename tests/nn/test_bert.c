/* BERT against Hugging Face transformers' Flax BERT. */
#include <criterion/criterion.h>

#include "grove/bert.h"
