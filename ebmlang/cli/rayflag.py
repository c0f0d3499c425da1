"""The `--ray [ADDRESS]` flag of the commands whose work splits into seeded jobs."""


def add_ray_argument(p) -> None:
    p.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help="run the chain (particle) groups as Ray tasks: on the cluster at "
                   "ADDRESS, else RAY_ADDRESS, else a local Ray started for the run; the "
                   "same results as without (needs pip install 'ebmlang[ray]')")


def note_if_unused(args, method: str, users: tuple[str, ...]) -> None:
    """A one-line note when --ray was given to a method that does not use it (it ran here)."""
    if getattr(args, "ray", None) is not None and method not in users:
        print(f"note: --ray is for method {' or '.join(users)}; {method} ran here, locally")
