"""The files of the demo organisation "acme": a dozen repositories described for Backstage.

What the demo exercises, by repository:

- `org`: the root `catalog-info.yaml` is a Location whose relative targets hold the
  groups, users, domains and systems (the catalog has to follow them).
- `payments-api`, `identity-service`, `orderService`: a component, its API with a real
  OpenAPI definition through `$text` (in `orderService` from a sub-folder), and its database.
- `payment-gateway` (kebab-case) and `orderService` (camelCase) names; `checkout-web` a
  website; `ui-kit` and `money` libraries; queues and databases as resources.
- `platform`: a monorepo with catalog files only in sub-folders.
- `shipping-service`: the descriptor is `catalog-info.yml`.
- `legacy-billing`: broken on purpose beside a valid entity: a component without
  `spec.owner`, and a sub-folder descriptor that is not valid YAML.
- `handbook`: no catalog file at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ORGANISATION = "acme"


@dataclass(frozen=True)
class DemoRepositorySpec:
    """One repository's content: first a scaffold commit, then a commit adding `catalog`."""

    name: str
    description: str
    scaffold: dict[str, str]
    catalog: dict[str, str] = field(default_factory=dict)


# --- org: a Location with relative targets -----------------------------------------------

_ORG_LOCATION = """\
apiVersion: backstage.io/v1alpha1
kind: Location
metadata:
  name: acme-org
  description: Acme's teams, people, domains and systems.
spec:
  targets:
    - ./org/groups.yaml
    - ./org/users.yaml
    - ./domains.yaml
    - ./systems.yaml
"""

_GROUPS = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: acme
  title: Acme Corporation
  description: Everyone at Acme.
spec:
  type: organization
  profile:
    displayName: Acme Corporation
    email: hello@acme.test
  children: [engineering]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: engineering
  description: Product engineering.
spec:
  type: department
  profile:
    displayName: Engineering
  parent: acme
  children: [payments-team, checkout-team, identity-team, platform-team]
  members: [olga.ivanova]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments-team
  description: Takes the money, safely.
  links:
    - url: https://chat.acme.test/channels/payments
      title: "#payments"
spec:
  type: team
  profile:
    displayName: Payments
    email: payments@acme.test
  parent: engineering
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: checkout-team
  description: Baskets, orders and delivery.
spec:
  type: team
  profile:
    displayName: Checkout
    email: checkout@acme.test
  parent: engineering
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: identity-team
  description: Sign-in, accounts and tokens.
spec:
  type: team
  profile:
    displayName: Identity
    email: identity@acme.test
  parent: engineering
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: platform-team
  description: The paved road every other team builds on.
spec:
  type: team
  profile:
    displayName: Developer Platform
    email: platform@acme.test
  parent: engineering
  children: []
"""

_PEOPLE = (
    ("jane.doe", "Jane Doe", "payments-team"),
    ("marco.rossi", "Marco Rossi", "payments-team"),
    ("aisha.khan", "Aisha Khan", "checkout-team"),
    ("li.wei", "Li Wei", "checkout-team"),
    ("sam.taylor", "Sam Taylor", "identity-team"),
    ("priya.natarajan", "Priya Natarajan", "platform-team"),
    ("tom.becker", "Tom Becker", "platform-team"),
    ("olga.ivanova", "Olga Ivanova", "engineering"),
)

_USERS = "---\n".join(
    f"""\
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: {login}
spec:
  profile:
    displayName: {display}
    email: {login}@acme.test
  memberOf: [{group}]
"""
    for login, display, group in _PEOPLE
)

_DOMAINS = """\
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata:
  name: payments
  description: Everything that moves money.
spec:
  owner: payments-team
---
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata:
  name: commerce
  description: From basket to doorstep.
spec:
  owner: checkout-team
---
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata:
  name: identity
  description: Who is who, and what they may do.
spec:
  owner: identity-team
---
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata:
  name: platform
  description: Shared infrastructure and libraries.
spec:
  owner: platform-team
"""

_SYSTEMS = """\
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: payments
  description: Card and wallet payments, refunds and settlement.
spec:
  owner: payments-team
  domain: payments
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: checkout
  description: Basket, orders and shipping for the web shop.
spec:
  owner: checkout-team
  domain: commerce
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: identity
  description: Accounts, sign-in and OAuth tokens.
spec:
  owner: identity-team
  domain: identity
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: developer-platform
  description: Notifications, search and the libraries every service uses.
spec:
  owner: platform-team
  domain: platform
"""

# --- payments ----------------------------------------------------------------------------

_PAYMENTS_API_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-api
  title: Payments API
  description: Authorises, captures and refunds card and wallet payments.
  annotations:
    github.com/project-slug: acme/payments-api
    backstage.io/techdocs-ref: dir:.
  tags: [python, fastapi, pci]
  links:
    - url: https://grafana.acme.test/d/payments
      title: Dashboard
spec:
  type: service
  lifecycle: production
  owner: payments-team
  system: payments
  providesApis: [payments-api]
  consumesApis: [identity-api]
  dependsOn:
    - resource:payments-db
    - component:money
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: payments-api
  title: Payments API
  description: Create payments, read their status and refund them.
  tags: [rest, payments]
spec:
  type: openapi
  lifecycle: production
  owner: payments-team
  system: payments
  definition:
    $text: ./openapi.yaml
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: payments-db
  description: PostgreSQL database of payments and refunds.
  tags: [postgresql]
spec:
  type: database
  owner: payments-team
  system: payments
"""

_PAYMENTS_OPENAPI = """\
openapi: 3.0.3
info:
  title: Payments API
  version: 2.4.0
  description: Authorise, capture and refund payments.
servers:
  - url: https://payments.acme.test/v2
paths:
  /payments:
    post:
      operationId: createPayment
      summary: Authorise a payment
      parameters:
        - name: Idempotency-Key
          in: header
          required: true
          schema: {type: string, format: uuid}
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/PaymentRequest'}
      responses:
        '201':
          description: The payment was authorised.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Payment'}
        '402':
          description: The payment was declined.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Problem'}
  /payments/{paymentId}:
    get:
      operationId: getPayment
      summary: Read a payment
      parameters:
        - {name: paymentId, in: path, required: true, schema: {type: string}}
      responses:
        '200':
          description: The payment.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Payment'}
        '404':
          description: No such payment.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Problem'}
  /payments/{paymentId}/refunds:
    post:
      operationId: refundPayment
      summary: Refund all or part of a captured payment
      parameters:
        - {name: paymentId, in: path, required: true, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [amount]
              properties:
                amount: {$ref: '#/components/schemas/Money'}
                reason: {type: string}
      responses:
        '202':
          description: The refund was accepted.
components:
  schemas:
    Money:
      type: object
      required: [currency, minorUnits]
      properties:
        currency: {type: string, pattern: '^[A-Z]{3}$', example: EUR}
        minorUnits: {type: integer, format: int64, example: 1999}
    PaymentRequest:
      type: object
      required: [amount, method, orderId]
      properties:
        amount: {$ref: '#/components/schemas/Money'}
        method: {type: string, enum: [card, wallet, bank_transfer]}
        orderId: {type: string}
    Payment:
      type: object
      required: [id, status, amount]
      properties:
        id: {type: string, example: pay_01HQ3Z}
        status: {type: string, enum: [authorised, captured, refunded, declined]}
        amount: {$ref: '#/components/schemas/Money'}
        createdAt: {type: string, format: date-time}
    Problem:
      type: object
      properties:
        type: {type: string, format: uri}
        title: {type: string}
        detail: {type: string}
"""

_PAYMENT_GATEWAY_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payment-gateway
  title: Payment Gateway
  description: Talks to the card schemes and wallets on behalf of the payments API.
  annotations:
    github.com/project-slug: acme/payment-gateway
  tags: [go, pci]
spec:
  type: service
  lifecycle: production
  owner: payments-team
  system: payments
  consumesApis: [payments-api]
  dependsOn:
    - resource:payment-events
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: payment-events
  description: Queue of payment state changes for settlement and notifications.
  tags: [kafka]
spec:
  type: queue
  owner: payments-team
  system: payments
"""

_MONEY_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: money
  title: money
  description: Exact money arithmetic and currency rounding for Python services.
  annotations:
    github.com/project-slug: acme/money
  tags: [python, library]
spec:
  type: library
  lifecycle: production
  owner: payments-team
  system: payments
"""

# --- checkout ----------------------------------------------------------------------------

_ORDER_SERVICE_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: orderService
  title: Order Service
  description: Turns baskets into orders and follows them to delivery.
  annotations:
    github.com/project-slug: acme/orderService
  tags: [java, spring]
spec:
  type: service
  lifecycle: production
  owner: checkout-team
  system: checkout
  providesApis: [orders-api]
  consumesApis: [payments-api]
  dependsOn:
    - resource:orders-db
    - resource:payment-events
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: orders-api
  title: Orders API
  description: Place orders and follow their status.
spec:
  type: openapi
  lifecycle: production
  owner: checkout-team
  system: checkout
  definition:
    $text: ./api/openapi.yaml
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: orders-db
  description: PostgreSQL database of orders.
spec:
  type: database
  owner: checkout-team
  system: checkout
"""

_ORDERS_OPENAPI = """\
openapi: 3.0.3
info:
  title: Orders API
  version: 1.7.2
servers:
  - url: https://orders.acme.test/v1
paths:
  /orders:
    get:
      operationId: listOrders
      summary: List the caller's orders, newest first
      parameters:
        - {name: status, in: query, schema: {$ref: '#/components/schemas/OrderStatus'}}
        - {name: cursor, in: query, schema: {type: string}}
      responses:
        '200':
          description: A page of orders.
          content:
            application/json:
              schema:
                type: object
                properties:
                  items:
                    type: array
                    items: {$ref: '#/components/schemas/Order'}
                  nextCursor: {type: string, nullable: true}
    post:
      operationId: placeOrder
      summary: Place an order from a basket
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [basketId, shippingAddress]
              properties:
                basketId: {type: string}
                shippingAddress: {$ref: '#/components/schemas/Address'}
      responses:
        '201':
          description: The order was placed.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Order'}
  /orders/{orderId}:
    get:
      operationId: getOrder
      summary: Read one order
      parameters:
        - {name: orderId, in: path, required: true, schema: {type: string}}
      responses:
        '200':
          description: The order.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Order'}
        '404':
          description: No such order.
components:
  schemas:
    OrderStatus:
      type: string
      enum: [placed, paid, shipped, delivered, cancelled]
    Address:
      type: object
      required: [line1, city, postalCode, country]
      properties:
        line1: {type: string}
        line2: {type: string}
        city: {type: string}
        postalCode: {type: string}
        country: {type: string, pattern: '^[A-Z]{2}$'}
    Order:
      type: object
      required: [id, status, total]
      properties:
        id: {type: string}
        status: {$ref: '#/components/schemas/OrderStatus'}
        total:
          type: object
          properties:
            currency: {type: string}
            minorUnits: {type: integer, format: int64}
        placedAt: {type: string, format: date-time}
"""

_CHECKOUT_WEB_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout-web
  title: Checkout (web)
  description: The basket and checkout pages of the web shop.
  annotations:
    github.com/project-slug: acme/checkout-web
  tags: [typescript, react]
  links:
    - url: https://shop.acme.test/checkout
      title: Live site
spec:
  type: website
  lifecycle: production
  owner: checkout-team
  system: checkout
  consumesApis: [orders-api, payments-api, identity-api]
  dependsOn:
    - component:ui-kit
"""

_SHIPPING_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: shipping-service
  title: Shipping Service
  description: Books couriers and tracks parcels for placed orders.
  annotations:
    github.com/project-slug: acme/shipping-service
  tags: [kotlin]
spec:
  type: service
  lifecycle: experimental
  owner: checkout-team
  system: checkout
  consumesApis: [orders-api]
"""

# --- identity ----------------------------------------------------------------------------

_IDENTITY_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: identity-service
  title: Identity Service
  description: Accounts, sign-in and OAuth 2 tokens for every Acme product.
  annotations:
    github.com/project-slug: acme/identity-service
  tags: [go, oauth2]
spec:
  type: service
  lifecycle: production
  owner: identity-team
  system: identity
  providesApis: [identity-api]
  dependsOn:
    - resource:identity-db
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: identity-api
  title: Identity API
  description: Issue tokens and read user accounts.
spec:
  type: openapi
  lifecycle: production
  owner: identity-team
  system: identity
  definition:
    $text: ./openapi.yaml
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: identity-db
  description: PostgreSQL database of accounts and credentials.
spec:
  type: database
  owner: identity-team
  system: identity
"""

_IDENTITY_OPENAPI = """\
openapi: 3.0.3
info:
  title: Identity API
  version: 3.1.0
servers:
  - url: https://id.acme.test
paths:
  /oauth/token:
    post:
      operationId: issueToken
      summary: Issue an access token (client credentials or refresh token grant)
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [grant_type]
              properties:
                grant_type: {type: string, enum: [client_credentials, refresh_token]}
                refresh_token: {type: string}
                scope: {type: string}
      responses:
        '200':
          description: A token.
          content:
            application/json:
              schema:
                type: object
                required: [access_token, token_type, expires_in]
                properties:
                  access_token: {type: string}
                  token_type: {type: string, example: Bearer}
                  expires_in: {type: integer}
        '401':
          description: The client could not be authenticated.
  /users/{userId}:
    get:
      operationId: getUser
      summary: Read a user account
      security:
        - bearer: []
      parameters:
        - {name: userId, in: path, required: true, schema: {type: string}}
      responses:
        '200':
          description: The account.
          content:
            application/json:
              schema:
                type: object
                properties:
                  id: {type: string}
                  email: {type: string, format: email}
                  displayName: {type: string}
  /.well-known/jwks.json:
    get:
      operationId: getSigningKeys
      summary: The public keys that verify issued tokens
      responses:
        '200':
          description: A JSON Web Key Set.
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer, bearerFormat: JWT}
"""

# --- platform monorepo -------------------------------------------------------------------

_NOTIFICATION_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: notification-service
  title: Notification Service
  description: Sends e-mail, SMS and push notifications for every product.
  annotations:
    github.com/project-slug: acme/platform
    cairn.dev/deployment-name: notification-service
  tags: [python]
spec:
  type: service
  lifecycle: production
  owner: platform-team
  system: developer-platform
  providesApis: [notifications-api]
  dependsOn:
    - resource:notification-queue
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: notifications-api
  title: Notifications API
  description: Send a notification to a user on their preferred channel.
spec:
  type: openapi
  lifecycle: production
  owner: platform-team
  system: developer-platform
  definition:
    $text: ./openapi.yaml
"""

_NOTIFICATION_OPENAPI = """\
openapi: 3.0.3
info:
  title: Notifications API
  version: 1.0.0
paths:
  /notifications:
    post:
      operationId: sendNotification
      summary: Queue a notification for a user
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [userId, template]
              properties:
                userId: {type: string}
                template: {type: string, example: order-shipped}
                channel: {type: string, enum: [email, sms, push]}
                data: {type: object, additionalProperties: true}
      responses:
        '202':
          description: The notification was queued.
"""

_SEARCH_INDEXER_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: search-indexer
  description: Keeps the product search index in step with the catalogue database.
  tags: [python]
spec:
  type: service
  lifecycle: experimental
  owner: platform-team
  system: developer-platform
  dependsOn:
    - resource:shared-postgres
"""

_TELEMETRY_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: telemetry
  description: OpenTelemetry set-up shared by every Python service.
  tags: [python, library, observability]
spec:
  type: library
  lifecycle: production
  owner: platform-team
  system: developer-platform
"""

_PLATFORM_INFRA_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: notification-queue
  description: Queue of notifications waiting to be sent.
spec:
  type: queue
  owner: platform-team
  system: developer-platform
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: shared-postgres
  description: The shared PostgreSQL cluster for small internal services.
spec:
  type: database
  owner: platform-team
  system: developer-platform
"""

_UI_KIT_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ui-kit
  title: Acme UI Kit
  description: React components and design tokens of the Acme design system.
  annotations:
    github.com/project-slug: acme/ui-kit
  tags: [typescript, react, design-system]
spec:
  type: library
  lifecycle: production
  owner: platform-team
  system: developer-platform
"""

# --- legacy-billing: broken on purpose ---------------------------------------------------

_LEGACY_BILLING_CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: legacy-billing
  description: The old invoicing system, replaced by payments-api this year.
spec:
  type: service
  lifecycle: deprecated
  owner: payments-team
  system: payments
---
# Broken on purpose: a Component must name its owner.
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: billing-batch
  description: Nightly invoice run.
spec:
  type: service
  lifecycle: deprecated
"""

_LEGACY_BILLING_BROKEN_YAML = """\
# Broken on purpose: this is not valid YAML (an unclosed flow sequence).
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: billing-export
  tags: [csv, sftp
spec:
  type: service
  owner: payments-team
"""


def _readme(title: str, text: str) -> str:
    return f"# {title}\n\n{text}\n"


REPOSITORIES: tuple[DemoRepositorySpec, ...] = (
    DemoRepositorySpec(
        name="org",
        description="Acme's teams, people, domains and systems.",
        scaffold={"README.md": _readme("acme/org", "Who is who at Acme, for the catalog.")},
        catalog={
            "catalog-info.yaml": _ORG_LOCATION,
            "org/groups.yaml": _GROUPS,
            "org/users.yaml": _USERS,
            "domains.yaml": _DOMAINS,
            "systems.yaml": _SYSTEMS,
        },
    ),
    DemoRepositorySpec(
        name="payments-api",
        description="Authorises, captures and refunds payments.",
        scaffold={
            "README.md": _readme("Payments API", "Card and wallet payments for Acme."),
            "pyproject.toml": '[project]\nname = "payments-api"\nversion = "2.4.0"\n',
            "app/main.py": 'from fastapi import FastAPI\n\napp = FastAPI(title="Payments API")\n',
        },
        catalog={"catalog-info.yaml": _PAYMENTS_API_CATALOG, "openapi.yaml": _PAYMENTS_OPENAPI},
    ),
    DemoRepositorySpec(
        name="payment-gateway",
        description="Card scheme and wallet connectivity.",
        scaffold={
            "README.md": _readme("payment-gateway", "Talks to the card schemes."),
            "go.mod": "module acme.test/payment-gateway\n\ngo 1.22\n",
            "main.go": 'package main\n\nfunc main() {\n\tprintln("payment-gateway")\n}\n',
        },
        catalog={"catalog-info.yaml": _PAYMENT_GATEWAY_CATALOG},
    ),
    DemoRepositorySpec(
        name="money",
        description="Exact money arithmetic for Python.",
        scaffold={
            "README.md": _readme("money", "Exact money arithmetic and rounding."),
            "src/money/__init__.py": '"""Exact money arithmetic."""\n',
        },
        catalog={"catalog-info.yaml": _MONEY_CATALOG},
    ),
    DemoRepositorySpec(
        name="orderService",
        description="Orders from basket to delivery.",
        scaffold={
            "README.md": _readme("orderService", "Orders, from basket to delivery."),
            "src/main/java/test/acme/orders/OrderService.java": (
                "package test.acme.orders;\n\npublic final class OrderService {}\n"
            ),
        },
        catalog={"catalog-info.yaml": _ORDER_SERVICE_CATALOG, "api/openapi.yaml": _ORDERS_OPENAPI},
    ),
    DemoRepositorySpec(
        name="checkout-web",
        description="The web shop's basket and checkout pages.",
        scaffold={
            "README.md": _readme("checkout-web", "Basket and checkout pages."),
            "package.json": '{\n  "name": "@acme/checkout-web",\n  "private": true\n}\n',
            "src/index.tsx": 'export const App = () => "checkout";\n',
        },
        catalog={"catalog-info.yaml": _CHECKOUT_WEB_CATALOG},
    ),
    DemoRepositorySpec(
        name="shipping-service",
        description="Courier bookings and parcel tracking.",
        scaffold={"README.md": _readme("shipping-service", "Couriers and parcels.")},
        catalog={"catalog-info.yml": _SHIPPING_CATALOG},
    ),
    DemoRepositorySpec(
        name="identity-service",
        description="Accounts, sign-in and tokens.",
        scaffold={
            "README.md": _readme("identity-service", "Accounts, sign-in and tokens."),
            "go.mod": "module acme.test/identity-service\n\ngo 1.22\n",
        },
        catalog={"catalog-info.yaml": _IDENTITY_CATALOG, "openapi.yaml": _IDENTITY_OPENAPI},
    ),
    DemoRepositorySpec(
        name="ui-kit",
        description="The Acme design system for React.",
        scaffold={
            "README.md": _readme("Acme UI Kit", "Components and design tokens."),
            "package.json": '{\n  "name": "@acme/ui-kit",\n  "version": "5.2.0"\n}\n',
        },
        catalog={"catalog-info.yaml": _UI_KIT_CATALOG},
    ),
    DemoRepositorySpec(
        name="platform",
        description="The developer platform monorepo.",
        scaffold={
            "README.md": _readme("platform", "Shared services, libraries and infrastructure."),
            "services/notification-service/app.py": '"""Notification service."""\n',
            "services/search-indexer/indexer.py": '"""Search indexer."""\n',
            "libs/telemetry/telemetry.py": '"""OpenTelemetry set-up."""\n',
        },
        catalog={
            "services/notification-service/catalog-info.yaml": _NOTIFICATION_CATALOG,
            "services/notification-service/openapi.yaml": _NOTIFICATION_OPENAPI,
            "services/search-indexer/catalog-info.yaml": _SEARCH_INDEXER_CATALOG,
            "libs/telemetry/catalog-info.yaml": _TELEMETRY_CATALOG,
            "infra/catalog-info.yaml": _PLATFORM_INFRA_CATALOG,
        },
    ),
    DemoRepositorySpec(
        name="legacy-billing",
        description="The old invoicing system.",
        scaffold={"README.md": _readme("legacy-billing", "Deprecated: use payments-api.")},
        catalog={
            "catalog-info.yaml": _LEGACY_BILLING_CATALOG,
            "batch/catalog-info.yaml": _LEGACY_BILLING_BROKEN_YAML,
        },
    ),
    DemoRepositorySpec(
        name="handbook",
        description="How Acme engineering works.",
        scaffold={
            "README.md": _readme("Engineering handbook", "How we work."),
            "docs/on-call.md": "# On call\n\nEvery team runs its own rota.\n",
        },
    ),
)
