"""Tracking: the broadcast to every active tracker, and the built-in local tracker."""
