"""An app's installation at a merchant, as a flow across modules: uninstalling ends the grant
and its tokens (platform) and stops the app's webhook endpoints there (webhooks), in one unit
of work. No tables of its own."""
