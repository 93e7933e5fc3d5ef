"""The tiny default policy: a character tokenizer and a ~0.7M-parameter Llama-config model, built locally.

No download: the tokenizer is a `PreTrainedTokenizerFast` over single characters (so it saves and loads with
`save_pretrained` and any engine that reads HF folders can use it), the model a `LlamaForCausalLM` from a
`LlamaConfig`. Real models load by hub name or local path through the same `load_policy`.
"""
from __future__ import annotations

import string
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
CHARS = list(string.digits + string.ascii_letters + string.punctuation + " \n")


class TinyModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden_size: int = Field(128, ge=8, description="model width")
    intermediate_size: int = Field(256, ge=8, description="MLP width")
    num_hidden_layers: int = Field(4, ge=1, description="transformer blocks")
    num_attention_heads: int = Field(4, ge=1, description="attention heads")
    max_position_embeddings: int = Field(128, ge=16, description="longest prompt + completion")
    seed: int = Field(0, description="initialisation seed")


def char_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + CHARS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", padding_side="left")
    return fast


def build_tiny_model(cfg: TinyModelConfig | None = None, tokenizer=None):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = cfg or TinyModelConfig()
    tok = tokenizer or char_tokenizer()
    torch.manual_seed(cfg.seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                         num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                         num_key_value_heads=cfg.num_attention_heads,
                         max_position_embeddings=cfg.max_position_embeddings, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def save_policy(model, tokenizer, folder: str | Path) -> Path:
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def load_policy(name_or_path: str | Path, dtype=torch.float32):
    """A saved tiny model folder, a local HF folder, or a hub name (needs network for the latter)."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    path = str(name_or_path)
    # AutoTokenizer on some folders returns a tokenizer that drops spaces; the fast class reads tokenizer.json as is
    tok = PreTrainedTokenizerFast.from_pretrained(path) if (Path(path) / "tokenizer.json").exists() else None
    if tok is None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    return model, tok
