// End to end from Node: log in at the auth service, place an order at the data service, read it back.
// Inputs come from the environment; the result is printed as one JSON line for the caller to check.
import { authClient, inventoryClient } from "../src/index.js";

const { AUTH_TARGET, DATA_TARGET, EMAIL, PASSWORD, PRODUCT_ID } = process.env;
for (const [name, value] of Object.entries({ AUTH_TARGET, DATA_TARGET, EMAIL, PASSWORD, PRODUCT_ID })) {
  if (!value) {
    console.error(`missing ${name}`);
    process.exit(2);
  }
}

const token = await authClient(AUTH_TARGET).login(EMAIL, PASSWORD);
const inventory = inventoryClient(DATA_TARGET, token);
const order = await inventory.createOrder({ lines: [{ productId: PRODUCT_ID, quantity: 2 }] });
const again = await inventory.getOrder({ id: order.id });
console.log(
  JSON.stringify({
    id: again.id,
    owner: again.owner,
    status: again.status,
    quantity: again.lines[0].quantity,
    total: { currency: again.total.currencyCode, minorUnits: again.total.minorUnits.toString() },
  }),
);
