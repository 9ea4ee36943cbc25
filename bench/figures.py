"""The figures issue 25's goals are judged by. Each benchmark records its own here
(bench/figures.json, beside RESULTS.md, from the same run), and bench/goals.py writes the goals
section of RESULTS.md from them: a goal is marked from the numbers the tables above show."""
import json
from pathlib import Path

FIGURES = Path(__file__).resolve().parent / "figures.json"


def record(section: str, **figures: float) -> None:
    """Replace this benchmark's figures (the others' stay as their last run left them)."""
    current = read()
    current[section] = figures
    FIGURES.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")


def read() -> dict[str, dict[str, float]]:
    return json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
