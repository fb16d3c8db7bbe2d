/* grove: the BERT WordPiece tokenizer (include/grove/tokenizer.h). */
#include "grove/tokenizer.h"
