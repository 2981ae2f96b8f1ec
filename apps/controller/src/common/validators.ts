import { type ValidationArguments, ValidationOptions, registerDecorator } from 'class-validator';
import {
  isCanonicalCidr,
  isIpv4,
  isReserved,
  normalizeMac,
  parseCidr,
  isUnicastMac,
} from '../../../../libs/model/src/index.js';
import { isUuid } from './lookup.js';

/** Names of hosts, networks, instances and routers: DNS-label-like, 1–63 characters. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const NAME_MESSAGE =
  '$property must be 1-63 characters of a-z, 0-9 and "-", starting with a letter or digit';

function rule(name: string, test: (v: unknown) => boolean, message: string) {
  return (options?: ValidationOptions): PropertyDecorator =>
    (object, propertyName) =>
      registerDecorator({
        name,
        target: object.constructor,
        propertyName: String(propertyName),
        options: { message, ...options },
        validator: { validate: test },
      });
}

const UUID_MESSAGE =
  '$property must not have the form of a UUID: ids are UUIDs, and a UUID in a path or reference always means an id';

/** What is wrong with a name, or undefined when it is one (one message, the most telling). */
function nameProblem(v: unknown): string | undefined {
  if (typeof v !== 'string') return '$property must be a string';
  // A name never has the form of an id: a path segment or reference that parses as a UUID
  // is always looked up as an id (`findByIdOrName`), so such a name could never be named.
  if (isUuid(v)) return UUID_MESSAGE;
  if (!NAME_PATTERN.test(v)) return NAME_MESSAGE;
  return undefined;
}

/**
 * The name of a host, network, instance or router: DNS-label-like (`NAME_PATTERN`) and
 * not of the form of a UUID, so that ids and names can never be confused. One rule, so a
 * bad name gets one message: not a string, of the form of a UUID, or not DNS-label-like.
 */
export const IsObjectName =
  (options?: ValidationOptions): PropertyDecorator =>
  (object, propertyName) =>
    registerDecorator({
      name: 'isObjectName',
      target: object.constructor,
      propertyName: String(propertyName),
      options: {
        message: (a: ValidationArguments) =>
          (nameProblem(a.value) ?? NAME_MESSAGE).replace('$property', a.property),
        ...options,
      },
      validator: { validate: (v: unknown) => nameProblem(v) === undefined },
    });

/**
 * An integer from `min` to `max`, with one message saying both (rather than one message
 * per failed rule: "must be an integer", "must not be less than", ...).
 */
export const IsIntIn = (min: number, max: number, options?: ValidationOptions) =>
  rule(
    'isIntIn',
    (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max,
    `$property must be an integer from ${min} to ${max}`,
  )(options);

/** For the OpenAPI description of a name property. */
export const NAME_DESCRIPTION =
  '1-63 characters of a-z, 0-9 and "-", starting with a letter or digit; not of the form of a UUID (ids are UUIDs)';

export const IsIpv4Address = rule(
  'isIpv4Address',
  (v) => typeof v === 'string' && isIpv4(v),
  '$property must be an IPv4 address (a.b.c.d)',
);

export const IsUnicastIpv4 = rule(
  'isUnicastIpv4',
  (v) => typeof v === 'string' && isIpv4(v) && !isReserved(parseCidr(`${v}/32`)!),
  '$property must be a unicast IPv4 address outside 0/8, 127/8, 169.254/16, 224/4 and 240/4',
);

export const IsIpv4Cidr = rule(
  'isIpv4Cidr',
  (v) => typeof v === 'string' && isCanonicalCidr(v) && !isReserved(parseCidr(v)!),
  '$property must be an IPv4 CIDR with no host bits set (e.g. 10.0.0.0/24), outside reserved ranges',
);

export const IsUnicastMac = rule(
  'isUnicastMac',
  (v) => typeof v === 'string' && normalizeMac(v) !== null && isUnicastMac(normalizeMac(v)!),
  '$property must be a unicast MAC address (aa:bb:cc:dd:ee:ff, least significant bit of the first octet clear)',
);

/** Label keys like Kubernetes': optional DNS prefix, then a name; values up to 63 characters. */
export const IsLabels = rule(
  'isLabels',
  (v) =>
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.keys(v).length <= 64 &&
    Object.entries(v).every(
      ([k, val]) =>
        /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/.test(
          k,
        ) &&
        typeof val === 'string' &&
        /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/.test(val),
    ),
  '$property must map label keys (prefix/name) to strings of up to 63 characters, at most 64 labels',
);
