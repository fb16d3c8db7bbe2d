#!/usr/bin/env python3
"""A Hugging Face model directory in Flax form, made by transformers itself:

    python hf_flax_msgpack.py SRC OUT [--head]

loads SRC (config.json + a PyTorch-named model.safetensors) with
FlaxBertModel (or, with --head, FlaxBertForSequenceClassification)
.from_pretrained(SRC, from_pt=True) and writes OUT with save_pretrained:
config.json and flax_model.msgpack (flax.serialization.to_bytes of the
params), plus SRC's vocab.txt. No PyTorch is needed: transformers reads a
safetensors file into Flax through safetensors' own flax reader.

Used for tests/golden/tiny-bert-flax (committed) and by
tests/interop/interop.sh for all-MiniLM-L6-v2."""
import argparse
import os
import shutil

from transformers import FlaxBertForSequenceClassification, FlaxBertModel

ap = argparse.ArgumentParser()
ap.add_argument('src')
ap.add_argument('out')
ap.add_argument('--head', action='store_true')
args = ap.parse_args()
cls = FlaxBertForSequenceClassification if args.head else FlaxBertModel
model = cls.from_pretrained(args.src, from_pt=True)
model.save_pretrained(args.out)
for name in ('vocab.txt', 'tokenizer_config.json'):
    if os.path.exists(os.path.join(args.src, name)):
        shutil.copy(os.path.join(args.src, name), os.path.join(args.out, name))
print('wrote', args.out, sorted(os.listdir(args.out)))
