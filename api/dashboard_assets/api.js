// The report endpoints, called like any other client would, with the report token if one is kept.

const TOKEN_KEY = "pageviews.reportToken";

export class Unauthorized extends Error {}

export class ApiFailure extends Error {
  constructor(message, problems = []) {
    super(message);
    this.problems = problems;
  }
}

// sessionStorage: the token lives as long as the tab, never on disk for later visitors.
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export async function getJson(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  const kept = token.get();
  if (kept) headers.Authorization = `Bearer ${kept}`;

  let response;
  try {
    response = await fetch(url, { headers, cache: "no-store" });
  } catch {
    throw new ApiFailure(`The service did not answer ${path}; is it running?`);
  }
  if (response.status === 401) throw new Unauthorized(`${path} needs a report token`);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body && body.error;
    throw new ApiFailure(`${path}: ${error ? error.message : `HTTP ${response.status}`}`, (error && error.problems) || []);
  }
  return body;
}
