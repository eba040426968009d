"""``SRGAN_OVERRIDES``: a profile changed field by field from one line of text, for stand-in and shortened runs.

:func:`srgan_lib.config.get_profile` applies ``$SRGAN_OVERRIDES`` to the profile it returns; the
changed profile says so in its description, which heads every table (``benchmarks/paper_e2e.sh``
uses it to run the paper profile on stand-in data with fewer iterations). It works on the profile's
fields as dataclass fields, so it needs nothing of :mod:`srgan_lib.config` but the objects it is given.
"""

from __future__ import annotations

import dataclasses

from .errors import ConfigError

#: Fields an override may not set: the profile's name (SRGAN_PROFILE chooses it) and the grid's axes (set per run).
NOT_OVERRIDABLE = frozenset({"profile", "scale", "crop_size", "use_tv", "seed"})


def apply_overrides(profile, spec: str):
    """``profile`` changed by ``spec``: ``"field=value,..."`` (as ``$SRGAN_OVERRIDES``), for a stand-in run.

    E.g. ``gan_iters=20,vgg_weights=random,train_data=/tmp/div2k_standin_train,seeds=0``. A field of
    :class:`srgan_lib.config.TrainConfig` changes the base config, one of :class:`~srgan_lib.config.Profile` (``seeds``, ``scales``,
    ``crop_sizes``, ...) the profile; a value takes its field's type: int, float, str, ``true``/``false``,
    ``none`` for an optional field, ``/`` between a tuple's values (``seeds=0/1``). The description ends
    ``[overrides: gan_iters=20, ...]``, since it heads every table. An empty ``spec`` returns ``profile``.

    Raises:
        ConfigError: naming SRGAN_OVERRIDES and the item at fault (no ``=``, an unknown field, one of
            :data:`NOT_OVERRIDABLE`, a value of the wrong type or one the config refuses).
    """
    kinds = {f.name: str(f.type) for f in dataclasses.fields(profile.base)}
    own = {f.name: str(f.type) for f in dataclasses.fields(profile) if f.name not in ("name", "description", "base")}
    flags = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    parse = {"int": int, "float": float, "str": str, "bool": lambda text: flags[text.lower()],
             "tuple[int, ...]": lambda text: tuple(int(v) for v in text.split("/")),
             "tuple[float, ...]": lambda text: tuple(float(v) for v in text.split("/"))}
    values: dict = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, text = (s.strip() for s in item.partition("="))
        kind = kinds.get(key) or own.get(key, "")
        problem = ("is not field=value" if not sep else "is not a field of TrainConfig or Profile" if not kind
                   else "is set by SRGAN_PROFILE or per run, not here" if key in NOT_OVERRIDABLE else "")
        if problem:
            raise ConfigError(f"SRGAN_OVERRIDES: {item!r} {problem} (e.g. gan_iters=20,vgg_weights=random)")
        try:
            none = kind.endswith(" | None") and text.lower() == "none"
            values[key] = None if none else parse[kind.removesuffix(" | None")](text)
        except (KeyError, ValueError):  # a value of another type, or a field of a type not parsed here (betas)
            raise ConfigError(f"SRGAN_OVERRIDES: {key}={text!r} is not a value of type {kind}") from None
    if not values:
        return profile
    shown = ", ".join(f"{k}={'/'.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in values.items())
    try:
        base = dataclasses.replace(profile.base, **{k: v for k, v in values.items() if k in kinds})
        return dataclasses.replace(profile, base=base, description=f"{profile.description} [overrides: {shown}]",
                                   **{k: v for k, v in values.items() if k in own})
    except ConfigError as exc:
        raise ConfigError(f"SRGAN_OVERRIDES={spec!r}: {exc}") from None
