"""JSONL files: one item per line, optionally with a field mapping for other key names."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curriculum.items import Item

ITEM_FIELDS = ("id", "prompt", "category", "answer", "difficulty", "metadata")


class JsonlSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["jsonl"] = "jsonl"
    path: str = Field(min_length=1, description="path of the JSONL file (readable by the controller)")
    fields: dict[str, str] = Field(
        default_factory=dict, description="item field -> key in the file, e.g. {'prompt': 'question'}"
    )
    id_prefix: str | None = Field(None, description="ids become '<prefix>-<line>' when the file has none")

    def items(self) -> list[Item]:
        bad = set(self.fields) - set(ITEM_FIELDS)
        if bad:
            raise ValueError(f"fields: unknown item field(s) {sorted(bad)}; known: {list(ITEM_FIELDS)}")
        path = Path(self.path)
        if not path.is_file():
            raise ValueError(f"path: no such file {self.path!r}")
        out = []
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError("a line must hold a JSON object")
                    d = {k: row[self.fields.get(k, k)] for k in ITEM_FIELDS if self.fields.get(k, k) in row}
                    if "id" not in d:
                        d["id"] = f"{self.id_prefix or path.stem}-{n}"
                    d["id"] = str(d["id"])
                    if d.get("answer") is not None:
                        d["answer"] = str(d["answer"])
                    out.append(Item.model_validate(d))
                except (ValueError, ValidationError) as e:
                    raise ValueError(f"{self.path}: line {n}: {e}") from None
        return out
