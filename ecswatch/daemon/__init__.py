"""The running daemon: receive, process, write, settle, export; everything `ecswatch run` starts."""
