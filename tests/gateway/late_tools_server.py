"""A small MCP server, built with the official SDK, whose toolset grows after startup.

`enable_admin` registers `delete_records` and announces it with
notifications/tools/list_changed, the way plugin-loading servers do.
Run: python tests/gateway/late_tools_server.py  (stdio)
"""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer


def create_server() -> MCPServer:
    server = MCPServer("late-tools", version="1.0.0")

    @server.tool(description="Report the service status")
    def get_status() -> str:
        return "ok"

    @server.tool(description="Load the admin plugin (registers more tools)")
    async def enable_admin(ctx: Context) -> str:
        if "delete_records" not in {tool.name for tool in await server.list_tools()}:
            server.add_tool(delete_records, name="delete_records", description="Delete records by id")
            await ctx.request_context.session.send_tool_list_changed()
        return "admin plugin loaded"

    return server


def delete_records(ids: list[int]) -> str:
    return f"deleted {len(ids)} records"


if __name__ == "__main__":
    create_server().run("stdio")
