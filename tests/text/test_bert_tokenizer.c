/* The BERT tokenizer against Hugging Face's BertTokenizer. */
#include <criterion/criterion.h>

#include "grove/tokenizer.h"
