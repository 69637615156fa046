"""The app's routers, one per page with its JSON API beside it."""
