import plugin.fakeorg


def test_public_names_are_pinned() -> None:
    # Adding a name is an API decision (style guide section 9).
    assert sorted(plugin.fakeorg.__all__) == [
        "ApiError",
        "BulkJobOverride",
        "FakeOrg",
        "FakeOrgError",
        "FakeOrgServer",
        "FaultRuleError",
        "LoggedRequest",
        "load_org",
        "serve",
        "sf_id",
        "start_fake_org",
        "to18",
    ]
