"""Where Switchyard lives: the checkout (BASE_DIR) and the data directory it writes to (DATA_DIR)."""
from pathlib import Path

from panel.env import env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(env_str("SWITCHYARD_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
