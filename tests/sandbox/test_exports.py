import interlink.sandbox


def test_all_lists_the_public_names_sorted() -> None:
    public = sorted(name for name in vars(interlink.sandbox) if not name.startswith("_"))
    assert interlink.sandbox.__all__ == sorted(interlink.sandbox.__all__)
    assert set(interlink.sandbox.__all__) == set(public)
