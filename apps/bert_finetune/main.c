/* Fine-tunes a pretrained BERT's classifier head on sentiment sentences. */
#include "finetune.h"

int main(void) { return 0; }
