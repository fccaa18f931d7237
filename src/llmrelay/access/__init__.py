"""Who is calling: API keys (`keys`) and the web UI's signed session cookie (`sessions`).  The HTTP
API and the web pages both read them from here."""
