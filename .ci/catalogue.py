#!/usr/bin/env python3
"""Generates the bundled price catalogue from LiteLLM's model price data.

    python3 .ci/catalogue.py SNAPSHOT.json > src/usage/catalogue/litellm.json

SNAPSHOT is LiteLLM's `model_prices_and_context_window.json` (or the copy
its Python package ships, `litellm/model_prices_and_context_window_backup.json`;
src/usage/catalogue/SOURCE.md says which one the checked-in file came from).

The output is still LiteLLM's format, so `tokentally price sync` reads it
like the upstream file, but keeps only what tokentally prices:

- entries with `mode: chat` of the providers in PROVIDERS (the ones people
  run: first-party APIs, the clouds that resell them, the big hosts), and
  with both an input and an output price per token;
- only the price fields tokentally stores (FIELDS, one long-context tier,
  web search per request), each number exactly as written upstream (the
  text, never a float round trip), plus `litellm_provider` and `mode`.

The same filter is applied by the Rust reader (`usage::catalogue::parse`),
which is what `price sync` uses on a full upstream file: keep the two lists
equal (a unit test compares them with this file).
"""

import json
import re
import sys

# Providers (LiteLLM's `litellm_provider`) whose chat models are kept.
PROVIDERS = [
    "anthropic",
    "openai",
    "gemini",
    "vertex_ai",
    "vertex_ai-language-models",
    "vertex_ai-anthropic_models",
    "vertex_ai-mistral_models",
    "vertex_ai-llama_models",
    "vertex_ai-deepseek_models",
    "vertex_ai-openai_models",
    "bedrock",
    "bedrock_converse",
    "amazon_nova",
    "mistral",
    "codestral",
    "deepseek",
    "xai",
    "openrouter",
    "groq",
    "azure",
    "azure_ai",
    "together_ai",
    "fireworks_ai",
    "cerebras",
    "perplexity",
    "cohere_chat",
    "moonshot",
    "zai",
]

# Per-token prices kept as they are.
FIELDS = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
]

# The long-context tier: `<field>_above_<N>k_tokens`, N the same for all.
TIER = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost|cache_creation_input_token_cost_above_1hr)"
    r"_above_(\d+)k_tokens$"
)

# Web search: LiteLLM prices it per query by search context size; the
# medium size is its default, and the only one tokentally keeps.
SEARCH = "search_context_cost_per_query"
SEARCH_SIZE = "search_context_size_medium"


class Number(str):
    """A JSON number kept as the text it was written as."""


def keep(entry):
    fields = {"litellm_provider": entry["litellm_provider"], "mode": "chat"}
    for field in FIELDS:
        if field in entry and entry[field] is not None:
            fields[field] = entry[field]
    tiers = {}
    for field, value in entry.items():
        match = TIER.match(field)
        if match and value is not None:
            tiers.setdefault(int(match.group(2)), {})[field] = value
    if tiers:
        # The lowest threshold: the one a request crosses first. (No kept
        # entry has two today; the Rust reader refuses an entry that does.)
        fields.update(tiers[min(tiers)])
    search = entry.get(SEARCH)
    if isinstance(search, dict) and search.get(SEARCH_SIZE) is not None:
        fields[SEARCH] = {SEARCH_SIZE: search[SEARCH_SIZE]}
    return fields


def dump(value):
    if isinstance(value, Number):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"unexpected {value!r}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f, parse_float=Number, parse_int=Number)
    kept = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or entry.get("mode") != "chat":
            continue
        if entry.get("litellm_provider") not in PROVIDERS:
            continue
        if entry.get("input_cost_per_token") is None or entry.get("output_cost_per_token") is None:
            continue
        kept[name] = keep(entry)
    lines = [f"{json.dumps(name)}:{dump(kept[name])}" for name in sorted(kept)]
    sys.stdout.write("{\n" + ",\n".join(lines) + "\n}\n")


if __name__ == "__main__":
    main()
