export { tcpTransport, type TcpTransportOptions, type TcpTransportComponents } from './tcp-transport.js';
export { encodeFrameHead, decodeFramePrefix, type FramePrefix } from './frame.js';
