"""The Merchant Account: server-rendered pages (Jinja2) over the same use cases as the API.

It is its own ASGI application (``ui.app.create_ui``) mounted at ``/account`` by
``api.app.create_app``, so none of its routes appear in the API's OpenAPI document, and its
errors are HTML pages rather than problem+json.

Conventions for every page module (``account``, ``orders``, ``order_actions``, U2's
``settings*``, ``dashboard``):

- **Routers.** One ``APIRouter`` per module, registered in ``ui.app.ROUTERS``. Paths are
  relative to the mount: ``/stores/{store_id}/orders``; build links with
  ``request.url_for(name, ...)`` or ``ui.rendering.url(request, name, ...)``.
- **Who may do what.** A page or action takes exactly one of these dependencies
  (``ui.deps``): ``Viewer`` (signed in, no store), ``StoreAccess`` (member of the
  ``{store_id}`` in the path, any role) or ``OwnerAccess`` (owner of it). A store the user
  does not belong to is ``404``, exactly like one that does not exist; staff on an owner's
  page get ``403``. An order or other resource is always loaded through the store id of the
  access object, never from the path alone, so another store's order is ``404`` as well.
- **CSRF.** Every non-GET request is checked by ``ui.deps.csrf_protect``, installed as a
  dependency of the whole UI application: a route cannot opt out. Forms include
  ``{{ csrf_field() }}``; scripts send the ``X-CSRF-Token`` header (``csrf_token()`` in
  templates). ``tests/ui/test_csrf.py`` posts to every POST route without a token.
- **Forms.** Read fields with ``await request.form()`` (already parsed by the CSRF check),
  validate through the use case (or a pydantic model), and on ``ValidationFailed`` re-render
  the same template with status 422 and ``form=FormState(values, errors)``
  (``ui.forms``): ``{{ field(form, "name", "Label") }}`` (``templates/macros.html``) shows
  the message next to its field and keeps what the user typed. Domain conflicts
  (``OrderbridgeError``) become a form-level error (``form.errors["_"]``).
- **Post/redirect/get.** A successful POST calls ``flash(request, message)`` and returns
  ``redirect(url)`` (303). ``base.html`` shows the flashes once.
- **Rendering.** ``render(request, "template.html", {...})`` adds ``viewer``, ``store``
  (when the page has a ``StoreAccess``), ``csrf_field`` and the filters: ``money(amount,
  currency)`` (babel, in the viewer's locale), ``when(datetime)`` (the viewer's time zone),
  ``ago``. Templates extend ``base.html`` and fill ``{% block content %}``; set
  ``{% set nav = "orders" %}`` to highlight the navigation entry (orders, settings,
  dashboard).
- **No business rule in a view.** A view parses, calls a use case inside
  ``container.db.transaction()`` (or reads in ``container.db.reader()``), and renders.
  The actor of a UI action is ``Actor(MERCHANT, "usr_…")`` (``StoreContext.actor``).
"""
