import interlink.sandbox


def test_all_lists_the_public_names_sorted() -> None:
    # `@py_builtins`, `@pytest_ar`: pytest rewrites the asserts of the distribution that
    # ships a pytest plugin (interlink.testing's), adding these to its modules.
    public = sorted(name for name in vars(interlink.sandbox) if not name.startswith(("_", "@")))
    assert interlink.sandbox.__all__ == sorted(interlink.sandbox.__all__)
    assert set(interlink.sandbox.__all__) == set(public)
