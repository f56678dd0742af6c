"""The one exception family a user can cause; every message is meant to be read by a person."""


class InputError(ValueError):
    """A file or setting the user gave cannot be processed. The message says why and what to do."""


class EmptyFileError(InputError):
    """The file has no bytes."""


class UnsupportedFormatError(InputError):
    """The file is not an image or RAW format we can read."""


class CorruptFileError(InputError):
    """The file claims a supported format but its data is damaged or truncated."""


class ImageTooLargeError(InputError):
    """The file or its pixel count exceeds the configured limit (checked before decoding)."""


class ImageTooSmallError(InputError):
    """The image is too small for the pipeline (a Bayer mosaic needs at least a few 2×2 tiles)."""


class RawFormatError(InputError):
    """A camera RAW file that LibRaw cannot decode or whose sensor layout we cannot handle."""


class SettingError(InputError):
    """An option value (ISO, variant name, size…) is out of range or unknown. `stage`: the pipeline stage whose
    setting it is, when one is (set by `isp.pipeline.Pipeline`, so a command can add a hint of its own)."""

    stage: str | None = None
