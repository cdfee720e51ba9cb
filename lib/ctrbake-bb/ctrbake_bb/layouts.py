"""Bundle layouts the class knows: what each one bakes (mode, engine, storage driver).

The loader layouts (docs/loader.md) plus `rootfs`: the store is shipped as store.tar and the
image class ctrbake-rootfs-store extracts it into IMAGE_ROOTFS (the seed article's approach).
"""

LAYOUTS = {
    # layout:      (mode,      engine,   storage driver)
    "archive":     ("archive", "docker", "overlay2"),
    "overlay-vfs": ("store",   "docker", "vfs"),
    "split":       ("store",   "docker", "overlay2"),
    "copy":        ("store",   "docker", "overlay2"),
    "podman-ro":   ("store",   "podman", "overlay"),
    "rootfs":      ("store",   "docker", "overlay2"),
}

ENGINE_DRIVERS = {"docker": ("overlay2", "vfs"), "podman": ("overlay", "vfs")}
ENGINE_RDEPENDS = {"docker": "docker", "podman": "podman"}


def defaults(layout):
    if layout not in LAYOUTS:
        raise ValueError(f"CTRBAKE_LAYOUT {layout!r} is not one of: {' '.join(LAYOUTS)}")
    return LAYOUTS[layout]


def check(layout, mode, engine, driver):
    """Why this combination cannot work, or None."""
    want_mode, _, _ = defaults(layout)
    if mode != want_mode:
        return f"CTRBAKE_LAYOUT {layout!r} needs CTRBAKE_MODE {want_mode!r}, not {mode!r}"
    if engine not in ENGINE_DRIVERS:
        return f"CTRBAKE_ENGINE {engine!r} is not one of: docker podman"
    if driver not in ENGINE_DRIVERS[engine]:
        return f"CTRBAKE_STORAGE_DRIVER {driver!r} does not go with engine {engine!r} (use one of: {' '.join(ENGINE_DRIVERS[engine])})"
    if layout == "podman-ro" and engine != "podman":
        return "CTRBAKE_LAYOUT 'podman-ro' needs CTRBAKE_ENGINE 'podman'"
    if layout == "overlay-vfs" and driver != "vfs":
        return "CTRBAKE_LAYOUT 'overlay-vfs' needs CTRBAKE_STORAGE_DRIVER 'vfs'"
    if layout == "split" and driver != "overlay2":
        return "CTRBAKE_LAYOUT 'split' needs CTRBAKE_STORAGE_DRIVER 'overlay2'"
    return None
