// The EC2 host client as the provision stage uses it, in one module it loads lazily through
// runner/stage-api.ts (`hostClients.ec2()`): this loads the AWS SDK.
export * as ec2 from './ec2.js';
export { describeAwsError } from './errors.js';
export { resolveAmi, DEFAULT_AMI_TYPE } from './ami.js';
export { maxHoursUserData } from './user-data.js';
export { waitForSsh } from './ssh-wait.js';
export { ensureSecurityGroup } from './security-group.js';
