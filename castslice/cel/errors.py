"""The one error of the compiler: a setting the CEL cannot decide as the webhook does."""


class Unsupported(ValueError):
    """A configuration `castslice policy` refuses to print, naming the setting and why."""

    def __init__(self, setting: str, why: str) -> None:
        super().__init__(f"{setting}: {why}; the policy engine cannot decide this as the "
                         "webhook does (run the webhook for this configuration)")
        self.setting = setting
