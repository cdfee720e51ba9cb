"""What ctrbake-rootfs-store.bbclass reads of a bundle with CTRBAKE_LAYOUT = "rootfs": the
bake's manifest.json and the daemon.json `ctrbake loader` rendered for the store, both beside
store.tar in the bundle's payload dir. JSON read as JSON; no BitBake import (tested with python3).
"""
import json
import os


def _load(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read {what} {path}: {e.strerror}; is it a bundle with CTRBAKE_LAYOUT = \"rootfs\"?") from e
    except ValueError as e:
        raise ValueError(f"{what} {path} is not JSON: {e}") from e


def store_driver(manifest_path):
    """The storage driver of the docker store the bake's manifest describes; ValueError naming
    the field otherwise."""
    m = _load(manifest_path, "the bake's manifest")
    if not isinstance(m, dict) or m.get("manifestVersion") != 1:
        raise ValueError(f"{manifest_path} is not a ctrbake manifest (manifestVersion 1)")
    engine = (m.get("engine") or {}).get("name") if isinstance(m.get("engine"), dict) else None
    driver = m.get("storageDriver")
    if m.get("mode") != "store" or engine != "docker" or not isinstance(driver, str) or not driver:
        raise ValueError(f"{manifest_path} is not a docker store (mode {m.get('mode')!r}, engine.name {engine!r}, storageDriver {driver!r}): "
                         'bake the bundle with CTRBAKE_LAYOUT = "rootfs" (a docker store)')
    return driver


def engine_config(daemon_json_path, manifest_path, data_root):
    """daemon.json text: the loader's for this store, with the data-root the store is extracted
    into (the image's CTRBAKE_ROOTFS_DATA_ROOT)."""
    config = _load(daemon_json_path, "the loader's daemon.json")
    driver = store_driver(manifest_path)
    if not isinstance(config, dict) or config.get("storage-driver") != driver:
        raise ValueError(f"{daemon_json_path} does not pin storage-driver {driver!r} of {os.path.basename(manifest_path)}: rebuild the bundle")
    config["data-root"] = data_root
    return json.dumps(config, indent=2) + "\n"
