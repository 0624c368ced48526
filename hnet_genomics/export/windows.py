"""Window planning moved to ``hnet_genomics.inference.windows``; these names stay importable from here."""

from hnet_genomics.inference.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW, Window, check_window, plan_windows

__all__ = ["DEFAULT_OVERLAP", "DEFAULT_WINDOW", "Window", "check_window", "plan_windows"]
