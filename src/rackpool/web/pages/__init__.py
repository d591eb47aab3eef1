"""The dashboard's pages: each an async function from query parameters to HTML."""
