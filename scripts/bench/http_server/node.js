// Hello-world HTTP server for the benchmark: Node.js `http`.
// Usage: node node.js PORT_FILE  (binds a free loopback port, writes it)
"use strict";
const http = require("http");
const fs = require("fs");
const server = http.createServer((req, res) => {
  res.writeHead(200, {"Content-Type": "text/plain", "Content-Length": 13});
  res.end("Hello, World!");
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => {
  fs.writeFileSync(process.argv[2], server.address().port + "\n");
});
