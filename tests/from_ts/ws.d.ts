// The part of the `ws` package that server.ts uses (ws ships no declarations of its own).
declare module "ws" {
  export class WebSocketServer {
    constructor(options: { host?: string; port?: number });
    on(event: "connection", listener: (socket: WebSocket) => void): this;
    on(event: "listening", listener: () => void): this;
    address(): { port: number };
    close(): void;
  }
}
