export { authorizer, connect, disconnect, message } from '../../shared/realtime/socket.js';
