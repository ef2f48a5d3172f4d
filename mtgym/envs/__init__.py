"""The mtgym environments. Importing a module here never pulls an optional dependency; the env modules do."""
