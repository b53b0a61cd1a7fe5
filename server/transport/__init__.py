"""How clients reach the server: the v1 websocket session, REST for scripts, and who may connect."""
