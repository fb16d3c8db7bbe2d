#!/usr/bin/env python3
"""Regenerates the BERT reference files with the real Hugging Face
transformers Flax BERT (FlaxBertModel, FlaxBertForSequenceClassification):

    sh tests/golden/make-venv.sh
    sh scripts/fetch-bert.sh        # all-MiniLM-L6-v2 into the data cache
    ~/.cache/grove/venv/bin/python tests/golden/make_bert_golden.py

GROVE_BERT_DIR names the all-MiniLM-L6-v2 directory (default
~/.cache/grove/all-MiniLM-L6-v2). No PyTorch is needed: transformers reads a
PyTorch-named model.safetensors into Flax (from_pt=True) through
safetensors' flax reader and its own name converter
(modeling_flax_pytorch_utils.rename_key_and_reshape_tensor: Linear 'weight'
[out, in] -> 'kernel' [in, out], Embedding 'weight' -> 'embedding',
LayerNorm 'weight' -> 'scale', a missing or extra 'bert.' prefix added or
dropped, buffers such as embeddings.position_ids and unused heads reported
as unexpected and left out).

It writes:

tests/golden/tiny-bert/ -- a tiny BERT for sequence classification made
here from a fixed numpy seed and saved as a Hugging Face model directory in
PyTorch form: config.json (BertConfig, vocab 99, hidden 32, 2 layers, 4
heads, intermediate 37, 64 positions, 3 labels), model.safetensors
(metadata format=pt, BertForSequenceClassification state-dict names,
Linear weights [out, in], plus the I64 buffer bert.embeddings.position_ids
and the pretraining-head tensor cls.predictions.bias that the classifier
does not use), vocab.txt (99 WordPiece tokens) and tokenizer_config.json.
The weights are not BERT's N(0, 0.02): with those the attention logits are
about 1e-3, softmax is nearly uniform and a kernel loaded untransposed
changes little. Here kernels are N(0, 0.15), biases N(0, 0.1), LayerNorm
scales 1 + N(0, 0.1) and LayerNorm biases N(0, 0.1), so a wrong mapping
(a kernel not transposed, scale and bias swapped) moves every output.

tests/golden/bert_tiny_golden.safetensors -- that directory loaded with
FlaxBertForSequenceClassification.from_pretrained(dir, from_pt=True):
  inputs/input_ids, inputs/attention_mask, inputs/token_type_ids  I32 [3, 9]
      (the metadata's sentences through BertTokenizer and the tiny vocab,
      padded to 9 with id 0 / mask 0; row 0 is a sentence pair, token types
      0 then 1), inputs/position_ids I32 [3, 9] (arange), inputs/labels I32 [3]
  params/<flax path>   every leaf of HF's loaded Flax params
      (params/bert/encoder/layer/0/attention/self/query/kernel [in, out], ...)
  outputs/last_hidden_state [3, 9, 32], outputs/pooler_output [3, 32]
      FlaxBertModule (the classifier's 'bert' submodule) applied to
      params['bert'], deterministic
  outputs/logits [3, 3]  FlaxBertForSequenceClassificationModule, deterministic
  outputs/loss []        mean softmax cross-entropy(logits, labels)
                         (optax.softmax_cross_entropy_with_integer_labels)
  grads/<flax path>      d loss / d param, deterministic
  train/logits [3, 3], train/loss []   deterministic=False,
                         rngs={'dropout': jax.random.PRNGKey(7)} on the
                         module's apply (dropout 0.1 everywhere)
  outputs_defaults/logits [3, 3]  attention_mask, token_type_ids and
                         position_ids left out of the model's public call
                         (it then uses ones, zeros and arange)
The modules are applied with head_mask=None; the public
FlaxBertForSequenceClassification.__call__ passes a head mask of int32 ones,
which multiplies the attention weights by 1 and gives the same numbers.

tests/golden/bert_minilm_golden.safetensors -- the real all-MiniLM-L6-v2
through FlaxBertModel.from_pretrained(dir, from_pt=True) and the slow
BertTokenizer of that directory on four sentences (metadata 'sentences'),
padding='longest':
  inputs/input_ids, inputs/attention_mask, inputs/token_type_ids  I32 [4, L]
  outputs/last_hidden_state [4, L, 384], outputs/pooler_output [4, 384]
  init/classifier/kernel [384, 2], init/classifier/bias [2]  the head that
      FlaxBertForSequenceClassification.from_pretrained(dir, from_pt=True,
      num_labels=2, seed=0) initialises because the checkpoint lacks it
      (metadata 'init/how' says how HF derives its key)
  outputs/logits_seed0 [4, 2]  that classifier, deterministic

Strings (versions, seeds, sentences, how things were made) are in each
file's metadata. Tensors are F32 or I32 only.

XLA runs with its default flags (XLA_FLAGS removed), as a Hugging Face user
runs it, with JAX's default PRNG (threefry2x32, jax_threefry_partitionable
as the installed JAX defaults it; both recorded). Made on an x86-64 CPU with
AVX-512 and FMA; XLA's default code depends on the CPU's instruction set, so
another machine may write other last bits."""
import json
import os
import platform
import warnings

# XLA's default flags, as a Flax user runs it (see the docstring)
os.environ.pop('XLA_FLAGS', None)

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jaxlib  # noqa: E402
import flax  # noqa: E402
import optax  # noqa: E402
import safetensors  # noqa: E402
import safetensors.numpy  # noqa: E402
import transformers  # noqa: E402
from flax.traverse_util import flatten_dict  # noqa: E402
from transformers import (BertConfig, BertTokenizer, FlaxBertForSequenceClassification,  # noqa: E402
                          FlaxBertModel)
from transformers.models.bert.modeling_flax_bert import FlaxBertModule  # noqa: E402

warnings.simplefilter('ignore', FutureWarning)
transformers.logging.set_verbosity_error()  # the "JAX classes are deprecated" notice

here = os.path.dirname(os.path.abspath(__file__))
tiny_dir = os.path.join(here, 'tiny-bert')
minilm_dir = os.environ.get('GROVE_BERT_DIR',
                            os.path.expanduser('~/.cache/grove/all-MiniLM-L6-v2'))

WEIGHTS_SEED = 20240
DROPOUT_SEED = 7
INIT_SEED = 0

TINY_CONFIG = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=37, max_position_embeddings=64, type_vocab_size=2,
                   hidden_act='gelu', layer_norm_eps=1e-12, hidden_dropout_prob=0.1,
                   attention_probs_dropout_prob=0.1, initializer_range=0.02, pad_token_id=0,
                   num_labels=3, architectures=['BertForSequenceClassification'])

# 5 specials, 5 punctuation marks, 60 words, 10 suffix pieces, 19 letters = 99
TINY_VOCAB = (
    ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '!', "'", ',', '.', '?']
    + ('the a is was cat dog sat on mat it and to of in i you he she we they good bad big '
       'small red blue run walk play hello world yes no this that what where when how why '
       'eat fish bird tree house car book read sun moon day night happy sad very not with '
       'for at by').split()
    + ['##s', '##ed', '##ing', '##er', '##ly', '##est', '##y', '##n', '##ness', '##ful']
    + list('bcdefghjklmnopqrstu'))
assert len(TINY_VOCAB) == 99 and len(set(TINY_VOCAB)) == 99

# row 0 a pair (token types 0 then 1), row 1 with an unknown word, row 2 short
TINY_TEXTS = [('the cat sat', 'dogs run'), ('hello, xyz world!', None), ('playing', None)]
TINY_LEN = 9
TINY_LABELS = np.array([2, 0, 1], np.int32)

MINILM_SENTENCES = [
    'Hi!',
    'Héllo, wörld! Ça va?',
    'The quick brown fox jumps over the lazy dog while the tokenizer splits '
    'unbelievably long words into pieces.',
    "grove's tokenizer: 3.14 isn't 東京, naïve café.",
]

INIT_HOW = (
    'FlaxBertForSequenceClassification.from_pretrained(dir, from_pt=True, num_labels=2, '
    'seed=0) builds the model first: FlaxPreTrainedModel.__init__ sets '
    'self.key = jax.random.PRNGKey(seed) and calls init_weights(self.key, input_shape) with '
    'input_shape=(1, 1) (FlaxBertPreTrainedModel.__init__ default). init_weights: '
    'input_ids = jnp.zeros((1, 1), "i4"); token_type_ids = zeros_like(input_ids); '
    'position_ids = broadcast_to(arange(1), (1, 1)); attention_mask = ones_like(input_ids); '
    'head_mask = jnp.ones((num_hidden_layers, num_attention_heads)) (float32); '
    'params_rng, dropout_rng = jax.random.split(rng); '
    'module.init({"params": params_rng, "dropout": dropout_rng}, input_ids, attention_mask, '
    'token_type_ids, position_ids, head_mask, return_dict=False)["params"] '
    '(init runs deterministic=True, so dropout_rng is never used). The checkpoint then '
    'overwrites every param except classifier/kernel and classifier/bias, which keep that '
    'init: the module attribute self.classifier = nn.Dense(num_labels, dtype=float32) with '
    "Flax's defaults, kernel_init = lecun_normal() = variance_scaling(1.0, 'fan_in', "
    "'truncated_normal') on shape (384, 2), bias_init = zeros. The same numbers come from "
    "flax's init of a root module whose only child is nn.Dense(2, name='classifier') with "
    'rngs {"params": params_rng} (checked when this file was made).')


def flat(tree):
    return {k: np.asarray(v) for k, v in flatten_dict(tree, sep='/').items()}


def f32(a):
    a = np.asarray(a)
    assert a.dtype == np.float32, a.dtype
    return np.array(a, order='C')  # a copy, C order, keeps a 0-d loss 0-d


def i32(a):
    return np.array(np.asarray(a), dtype=np.int32, order='C')


def base_metadata():
    return {
        'transformers_version': transformers.__version__,
        'jax_version': jax.__version__,
        'jaxlib_version': jaxlib.__version__,
        'flax_version': flax.__version__,
        'optax_version': optax.__version__,
        'numpy_version': np.__version__,
        'safetensors_version': safetensors.__version__,
        'python_version': platform.python_version(),
        'jax_default_prng_impl': str(jax.config.jax_default_prng_impl),
        'jax_threefry_partitionable': str(bool(jax.config.jax_threefry_partitionable)),
        'xla_flags': 'XLA defaults (XLA_FLAGS unset)',
        'generator': 'tests/golden/make_bert_golden.py',
    }


def summary(name, tensors):
    print(name)
    for k in sorted(tensors):
        a = tensors[k]
        m = float(np.max(np.abs(a))) if a.size else 0.0
        if k.startswith(('params/', 'grads/')):
            continue
        print('  %-34s %-5s %-16s max|x| %.6g' % (k, a.dtype, list(a.shape), m))
    for group in ('params/', 'grads/'):
        keys = [k for k in tensors if k.startswith(group)]
        if keys:
            m = max(float(np.max(np.abs(tensors[k]))) for k in keys)
            print('  %-34s %d leaves, max|x| %.6g' % (group + '*', len(keys), m))


# --- the tiny model directory -------------------------------------------

def tiny_state_dict(config):
    """BertForSequenceClassification's state dict, PyTorch names and layouts."""
    rs = np.random.RandomState(WEIGHTS_SEED)
    h, ff = config.hidden_size, config.intermediate_size

    def normal(shape, std):
        return (std * rs.standard_normal(shape)).astype(np.float32)

    sd = {}

    def linear(name, n_out, n_in):
        sd[name + '.weight'] = normal((n_out, n_in), 0.15)
        sd[name + '.bias'] = normal((n_out,), 0.1)

    def layer_norm(name):
        sd[name + '.weight'] = (1.0 + normal((h,), 0.1)).astype(np.float32)
        sd[name + '.bias'] = normal((h,), 0.1)

    e = 'bert.embeddings.'
    sd[e + 'word_embeddings.weight'] = normal((config.vocab_size, h), 0.5)
    sd[e + 'position_embeddings.weight'] = normal((config.max_position_embeddings, h), 0.5)
    sd[e + 'token_type_embeddings.weight'] = normal((config.type_vocab_size, h), 0.5)
    layer_norm(e + 'LayerNorm')
    sd[e + 'position_ids'] = np.arange(config.max_position_embeddings, dtype=np.int64)[None, :]
    for i in range(config.num_hidden_layers):
        p = 'bert.encoder.layer.%d.' % i
        for qkv in ('query', 'key', 'value'):
            linear(p + 'attention.self.' + qkv, h, h)
        linear(p + 'attention.output.dense', h, h)
        layer_norm(p + 'attention.output.LayerNorm')
        linear(p + 'intermediate.dense', ff, h)
        linear(p + 'output.dense', h, ff)
        layer_norm(p + 'output.LayerNorm')
    linear('bert.pooler.dense', h, h)
    sd['classifier.weight'] = normal((config.num_labels, h), 0.3)
    sd['classifier.bias'] = normal((config.num_labels,), 0.1)
    sd['cls.predictions.bias'] = normal((config.vocab_size,), 0.1)  # a pretraining head
    return sd


def expected_flax_params(sd):
    """The documented PyTorch -> Flax mapping, written out independently of HF."""
    out = {}
    for name, t in sd.items():
        if name in ('bert.embeddings.position_ids', 'cls.predictions.bias'):
            continue
        parts = name.split('.')
        last = parts[-1]
        if parts[-2].endswith('_embeddings'):
            parts[-1] = 'embedding'
        elif parts[-2] == 'LayerNorm':
            parts[-1] = 'scale' if last == 'weight' else 'bias'
        elif last == 'weight':
            parts[-1] = 'kernel'
            t = t.T
        out['/'.join(parts)] = t
    return out


def write_tiny_dir():
    os.makedirs(tiny_dir, exist_ok=True)
    config = BertConfig(**TINY_CONFIG)
    config.save_pretrained(tiny_dir)
    with open(os.path.join(tiny_dir, 'vocab.txt'), 'w') as f:
        f.write(''.join(t + '\n' for t in TINY_VOCAB))
    with open(os.path.join(tiny_dir, 'tokenizer_config.json'), 'w') as f:
        json.dump({'do_lower_case': True, 'tokenize_chinese_chars': True, 'strip_accents': None,
                   'unk_token': '[UNK]', 'sep_token': '[SEP]', 'pad_token': '[PAD]',
                   'cls_token': '[CLS]', 'mask_token': '[MASK]',
                   'tokenizer_class': 'BertTokenizer',
                   'model_max_length': TINY_CONFIG['max_position_embeddings']}, f, indent=2)
        f.write('\n')
    sd = tiny_state_dict(config)
    safetensors.numpy.save_file(sd, os.path.join(tiny_dir, 'model.safetensors'),
                                metadata={'format': 'pt'})
    return sd


# --- tiny golden -----------------------------------------------------------

def ce_loss(logits, labels):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def make_tiny_golden(sd):
    model = FlaxBertForSequenceClassification.from_pretrained(tiny_dir, from_pt=True)
    config = model.config
    params = model.params
    got = flat(params)
    want = expected_flax_params(sd)
    assert sorted(got) == sorted(want), (sorted(set(got) ^ set(want)))
    for k in want:
        assert got[k].dtype == np.float32 and np.array_equal(got[k], want[k]), k

    tok = BertTokenizer.from_pretrained(tiny_dir)
    enc_rows = [tok(a, b, padding='max_length', max_length=TINY_LEN, truncation=True)
                for a, b in TINY_TEXTS]
    ids = np.array([r['input_ids'] for r in enc_rows], np.int32)
    mask = np.array([r['attention_mask'] for r in enc_rows], np.int32)
    types = np.array([r['token_type_ids'] for r in enc_rows], np.int32)
    assert ids.shape == (3, TINY_LEN)
    lengths = mask.sum(1)
    assert len(set(lengths.tolist())) == 3 and types[0].max() == 1, (lengths, types)
    assert (ids[mask == 0] == 0).all() and (tok.unk_token_id in ids)
    pos = np.broadcast_to(np.arange(TINY_LEN, dtype=np.int32), ids.shape).copy()

    module = model.module
    bert = FlaxBertModule(config=config, dtype=jnp.float32)
    out = bert.apply({'params': params['bert']}, ids, mask, types, pos, None,
                     deterministic=True)
    logits = module.apply({'params': params}, ids, mask, types, pos, None,
                          deterministic=True).logits

    def loss_fn(p):
        lg = module.apply({'params': p}, ids, mask, types, pos, None, deterministic=True).logits
        return ce_loss(lg, TINY_LABELS)
    loss, grads = jax.value_and_grad(loss_fn)(params)

    train_logits = module.apply({'params': params}, ids, mask, types, pos, None,
                                deterministic=False,
                                rngs={'dropout': jax.random.PRNGKey(DROPOUT_SEED)}).logits
    train_loss = ce_loss(train_logits, TINY_LABELS)

    default_logits = model(ids).logits

    # the public call (head mask of int32 ones) and the module agree
    public = model(ids, mask, types, pos).logits
    print('tiny: public call vs module logits, max |diff| %.3g'
          % float(np.max(np.abs(np.asarray(public) - np.asarray(logits)))))
    no_mask = module.apply({'params': params}, ids, None, None, None, None,
                           deterministic=True).logits
    print('tiny: defaults via public call vs module with None, max |diff| %.3g'
          % float(np.max(np.abs(np.asarray(no_mask) - np.asarray(default_logits)))))
    assert not np.allclose(np.asarray(train_logits), np.asarray(logits), atol=1e-3)

    tensors = {
        'inputs/input_ids': i32(ids), 'inputs/attention_mask': i32(mask),
        'inputs/token_type_ids': i32(types), 'inputs/position_ids': i32(pos),
        'inputs/labels': i32(TINY_LABELS),
        'outputs/last_hidden_state': f32(out.last_hidden_state),
        'outputs/pooler_output': f32(out.pooler_output),
        'outputs/logits': f32(logits), 'outputs/loss': f32(loss),
        'train/logits': f32(train_logits), 'train/loss': f32(train_loss),
        'outputs_defaults/logits': f32(default_logits),
    }
    for k, v in got.items():
        tensors['params/' + k] = f32(v)
    for k, v in flat(grads).items():
        tensors['grads/' + k] = f32(v)

    meta = base_metadata()
    meta.update({
        'model': 'tests/golden/tiny-bert (FlaxBertForSequenceClassification.from_pretrained('
                 'dir, from_pt=True))',
        'config': json.dumps(TINY_CONFIG, sort_keys=True),
        'weights_seed': 'numpy.random.RandomState(%d), see tiny_state_dict()' % WEIGHTS_SEED,
        'sentences': json.dumps(TINY_TEXTS, ensure_ascii=False),
        'tokenizer': "BertTokenizer(tests/golden/tiny-bert), padding='max_length', "
                     'max_length=%d, truncation=True' % TINY_LEN,
        'tokens': json.dumps([tok.convert_ids_to_tokens(r) for r in ids.tolist()]),
        'labels': json.dumps(TINY_LABELS.tolist()),
        'loss': 'mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))',
        'outputs/how': 'module.apply({"params": params}, input_ids, attention_mask, '
                       'token_type_ids, position_ids, head_mask=None, deterministic=True); '
                       'last_hidden_state and pooler_output from FlaxBertModule on '
                       'params["bert"]',
        'grads/how': 'jax.value_and_grad of the loss w.r.t. every param, deterministic=True',
        'train/dropout_seed': str(DROPOUT_SEED),
        'train/how': 'module.apply(..., deterministic=False, rngs={"dropout": '
                     'jax.random.PRNGKey(%d)}), head_mask=None' % DROPOUT_SEED,
        'outputs_defaults/how': 'FlaxBertForSequenceClassification.__call__(input_ids) with '
                                'attention_mask, token_type_ids, position_ids left out '
                                '(ones, zeros, arange)',
    })
    path = os.path.join(here, 'bert_tiny_golden.safetensors')
    safetensors.numpy.save_file(tensors, path, metadata=meta)
    summary('bert_tiny_golden.safetensors', tensors)
    return path


# --- all-MiniLM-L6-v2 golden ----------------------------------------------

def make_minilm_golden():
    model = FlaxBertModel.from_pretrained(minilm_dir, from_pt=True)
    tok = BertTokenizer.from_pretrained(minilm_dir)
    enc = tok(MINILM_SENTENCES, padding='longest', return_tensors='np')
    ids = i32(enc['input_ids'])
    mask = i32(enc['attention_mask'])
    types = i32(enc['token_type_ids'])
    pos = np.broadcast_to(np.arange(ids.shape[1], dtype=np.int32), ids.shape).copy()
    out = model.module.apply({'params': model.params}, ids, mask, types, pos, None,
                             deterministic=True)
    public = model(ids, mask, types)
    print('minilm: public call vs module last_hidden_state, max |diff| %.3g'
          % float(np.max(np.abs(np.asarray(public.last_hidden_state)
                                - np.asarray(out.last_hidden_state)))))

    cls = FlaxBertForSequenceClassification.from_pretrained(minilm_dir, from_pt=True,
                                                            num_labels=2, seed=INIT_SEED)
    head = cls.params['classifier']
    # the base weights are the checkpoint's, the head is HF's init
    for k, v in flat(model.params).items():
        assert np.array_equal(np.asarray(v), flat(cls.params['bert'])[k]), k

    # what INIT_HOW claims: the head is Flax's init of a Dense named 'classifier'
    params_rng, _ = jax.random.split(jax.random.PRNGKey(INIT_SEED))

    class Root(flax.linen.Module):
        @flax.linen.compact
        def __call__(self, x):
            return flax.linen.Dense(2, name='classifier')(x)
    alone = Root().init({'params': params_rng}, jnp.zeros((1, 384)))['params']['classifier']
    assert np.array_equal(np.asarray(alone['kernel']), np.asarray(head['kernel']))
    assert np.array_equal(np.asarray(alone['bias']), np.asarray(head['bias']))

    logits = cls.module.apply({'params': cls.params}, ids, mask, types, pos, None,
                              deterministic=True).logits

    tensors = {
        'inputs/input_ids': ids, 'inputs/attention_mask': mask, 'inputs/token_type_ids': types,
        'outputs/last_hidden_state': f32(out.last_hidden_state),
        'outputs/pooler_output': f32(out.pooler_output),
        'init/classifier/kernel': f32(head['kernel']),
        'init/classifier/bias': f32(head['bias']),
        'outputs/logits_seed0': f32(logits),
    }
    meta = base_metadata()
    meta.update({
        'model': 'sentence-transformers/all-MiniLM-L6-v2 (scripts/fetch-bert.sh), '
                 'FlaxBertModel.from_pretrained(dir, from_pt=True)',
        'sentences': json.dumps(MINILM_SENTENCES, ensure_ascii=False),
        'tokenizer': "BertTokenizer.from_pretrained(dir) (the slow one), padding='longest'",
        'tokens': json.dumps([tok.convert_ids_to_tokens(r) for r in ids.tolist()],
                             ensure_ascii=False),
        'outputs/how': 'FlaxBertModule.apply({"params": params}, input_ids, attention_mask, '
                       'token_type_ids, position_ids=arange, head_mask=None, '
                       'deterministic=True)',
        'init/seed': str(INIT_SEED),
        'init/input_shape': '(1, 1)',
        'init/how': INIT_HOW,
        'outputs/logits_seed0/how': 'FlaxBertForSequenceClassificationModule.apply of that '
                                    'model, same inputs, head_mask=None, deterministic=True',
    })
    path = os.path.join(here, 'bert_minilm_golden.safetensors')
    safetensors.numpy.save_file(tensors, path, metadata=meta)
    summary('bert_minilm_golden.safetensors', tensors)
    return path


def main():
    print('transformers %s, jax %s, flax %s' % (transformers.__version__, jax.__version__,
                                               flax.__version__))
    sd = write_tiny_dir()
    make_tiny_golden(sd)
    make_minilm_golden()


if __name__ == '__main__':
    main()
