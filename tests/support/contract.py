"""The MCP tool names of DESIGN.md's contract (plus ``salesforce_backup_resume``), pinned once for the tests."""

TOOL_NAMES = frozenset(
    {
        "salesforce_backup",
        "salesforce_backup_status",
        "salesforce_backup_list",
        "salesforce_backup_cancel",
        "salesforce_backup_events",
        "salesforce_backup_resume",
    }
)
