"""The sweep driver's resume state: `<out>/sweep_state.json`, one typed record."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from tl.atomic import write_file
from tl.errors import TLError

STATE_FILE = "sweep_state.json"


@dataclass
class SweepState:
    sweep_run_id: str | None = None
    run_token: str | None = None  # makes Tune experiment names unique per sweep
    base_run_id: str | None = None  # None: no base model (a scratch-only sweep, or not trained yet)
    fraction_runs: dict[str, str] = field(default_factory=dict)  # "0.25" -> MLflow run id
    done: list[str] = field(default_factory=list)  # Study.key of finished studies
    attempts: dict[str, int] = field(default_factory=dict)  # Study.key -> studies cut by --time-budget
    restart: list[str] = field(default_factory=list)  # Study.key of cut studies still to clean up

    @classmethod
    def load(cls, path: str) -> "SweepState":
        with open(path) as stream:
            try:
                values = json.load(stream)
            except json.JSONDecodeError as error:
                raise TLError(f"{path}: not valid JSON ({error}); remove it or run without --resume") from None
        if values.get("base_run_id") == "none":  # written by versions before the typed state
            values["base_run_id"] = None
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TLError(f"{path}: unknown entries {unknown}")
        return cls(**values)

    @classmethod
    def load_or_new(cls, path: str, resume: bool) -> "SweepState":
        return cls.load(path) if resume and os.path.exists(path) else cls()

    def save(self, path: str) -> None:
        write_file(path, lambda stream: json.dump(dataclasses.asdict(self), stream, indent=2), "w")
