/**
 * An ssh-agent that is the only credential is checked before the handshake: a missing socket and
 * an agent holding no key each get a message of their own (ssh2 would only say "All configured
 * authentication methods failed").
 */
import { statSync } from "fs";
import { OpenSSHAgent } from "ssh2";
import { AuthenticationError } from "../errors";

const ADD_KEY = "load a key with `ssh-add ~/.ssh/id_ed25519` (in the shell that runs pulumi, with SSH_AUTH_SOCK exported), or set connection.agent to the socket of an agent that holds one";

export async function assertAgentUsable(socketPath: string, label: string): Promise<void> {
    let isSocket = false;
    try {
        isSocket = statSync(socketPath).isSocket();
    } catch {
        throw new AuthenticationError(`the ssh-agent socket ${socketPath} does not exist`, { host: label },
            `start an agent (\`eval $(ssh-agent)\`) and ${ADD_KEY}`);
    }
    if (!isSocket) {
        throw new AuthenticationError(`${socketPath} is not an ssh-agent socket`, { host: label },
            "set connection.agent (or SSH_AUTH_SOCK) to the agent's socket path, as `echo $SSH_AUTH_SOCK` prints it");
    }
    const count = await new Promise<number>((resolve, reject) => {
        new OpenSSHAgent(socketPath).getIdentities((error, keys) => (error ? reject(error) : resolve(keys?.length ?? 0)));
    }).catch((error: Error) => {
        throw new AuthenticationError(`the ssh-agent at ${socketPath} does not answer: ${error.message}`, { host: label },
            "restart the agent (`eval $(ssh-agent)`) and load your key with `ssh-add`");
    });
    if (count === 0) {
        throw new AuthenticationError(`the ssh-agent at ${socketPath} holds no keys`, { host: label }, ADD_KEY);
    }
}
