import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DeskdError } from '../errors.js';

/**
 * Signed managed policy (issue 17): Ed25519 detached signatures with `node:crypto` (`sign(null, data,
 * key)` / `verify(null, data, key, sig)`; Ed25519 takes no digest argument, Node docs "crypto.sign").
 *
 * Files beside the managed policy `managed-policy.yaml`:
 * - `managed-policy.pub`: the organisation's public key (PEM, SPKI). When it exists, a signature is required.
 * - `managed-policy.yaml.sig`: the detached signature of the policy file's exact bytes, base64 (one line).
 */

/** Name of the public key file beside the managed policy. */
export const MANAGED_PUBKEY_NAME = 'managed-policy.pub';

/** The signature file of a policy file: `<file>.sig`. */
export function signaturePathOf(file: string): string {
  return `${file}.sig`;
}

/** The public key file configured beside a managed policy file. */
export function publicKeyPathOf(file: string): string {
  return path.join(path.dirname(file), MANAGED_PUBKEY_NAME);
}

/** A new Ed25519 key pair, PEM encoded (public SPKI, private PKCS#8). */
export function generatePolicyKeys(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/**
 * The detached signature (base64) of `data` with an Ed25519 private key (PEM).
 * @throws DeskdError `VALIDATION_FAILED` when the key is not an Ed25519 private key.
 */
export function signPolicyBytes(data: Buffer | string, privateKeyPem: string): string {
  try {
    return sign(null, Buffer.from(data), privateKeyPem).toString('base64');
  } catch (e) {
    throw new DeskdError('VALIDATION_FAILED', `cannot sign with this key (an Ed25519 private key in PEM is needed): ${(e as Error).message}`);
  }
}

function publicKey(pem: string): KeyObject {
  const k = createPublicKey(pem);
  if (k.asymmetricKeyType !== 'ed25519') throw new Error(`the key is ${k.asymmetricKeyType ?? 'not asymmetric'}, not ed25519`);
  return k;
}

/** Whether `signatureB64` is a valid Ed25519 signature of `data` under the public key (PEM). Never throws. */
export function verifyPolicyBytes(data: Buffer | string, signatureB64: string, publicKeyPem: string): boolean {
  try {
    const sig = Buffer.from(signatureB64.trim(), 'base64');
    if (sig.length !== 64) return false;
    return verify(null, Buffer.from(data), publicKey(publicKeyPem), sig);
  } catch {
    return false;
  }
}

/** What {@link readManagedPolicyFile} read. */
export interface ManagedPolicyText {
  text: string;
  /** True when a public key is configured and the signature verified. */
  signed: boolean;
}

/**
 * Read a managed policy file and, when `managed-policy.pub` sits beside it (or `pubKeyPath` is given), check
 * its detached signature `<file>.sig`.
 * @returns null when the policy file does not exist (no managed layer).
 * @throws DeskdError `POLICY_INVALID` when the file cannot be read, the key is unreadable or not Ed25519,
 *   or the signature is missing or does not verify.
 */
export async function readManagedPolicyFile(file: string, pubKeyPath: string = publicKeyPathOf(file)): Promise<ManagedPolicyText | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DeskdError('POLICY_INVALID', `${file}: cannot read the managed policy: ${(e as Error).message}`);
  }
  let pem: string | null = null;
  try {
    pem = await readFile(pubKeyPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new DeskdError('POLICY_INVALID', `${pubKeyPath}: cannot read the managed policy's public key: ${(e as Error).message}`);
  }
  if (pem === null) return { text: bytes.toString('utf8'), signed: false };
  try {
    publicKey(pem);
  } catch (e) {
    throw new DeskdError('POLICY_INVALID', `${pubKeyPath}: not an Ed25519 public key: ${(e as Error).message}`);
  }
  const sigPath = signaturePathOf(file);
  let sig: string;
  try {
    sig = await readFile(sigPath, 'utf8');
  } catch (e) {
    throw new DeskdError('POLICY_INVALID', `${file}: a public key is configured (${pubKeyPath}) but the signature ${sigPath} cannot be read: ${(e as Error).message}`);
  }
  if (!verifyPolicyBytes(bytes, sig, pem)) throw new DeskdError('POLICY_INVALID', `${file}: the signature ${sigPath} does not verify with ${pubKeyPath} (the policy or its signature was changed)`);
  return { text: bytes.toString('utf8'), signed: true };
}
