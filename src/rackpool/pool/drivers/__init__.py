"""Provider drivers. Each package has the same shape: ``__init__`` (exports),
``config`` (the provider's pydantic model), ``adapter`` (the state machines).
``interface`` is the contract between the framework and every driver."""
